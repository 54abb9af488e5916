"""Routes, proof of delivery from a phone, failed stops, returns and reversals."""
