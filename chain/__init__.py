"""pointsnet chain package."""
