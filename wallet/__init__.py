"""pointsnet wallet package."""
