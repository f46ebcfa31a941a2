"""Synthetic sample scenes: photos in one of several capture layouts plus their exact camera poses."""
