"""pointsnet gateway package."""
