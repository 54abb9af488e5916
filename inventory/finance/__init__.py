"""Finance: per diem cost reports, reconciliation against billed claims, period close."""
