"""Serialized equipment: the pump and pole lifecycle, preventive maintenance and history."""
