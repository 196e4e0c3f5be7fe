"""The shipping component: shipments and their tracking numbers."""
