"""Fixture factory: Laravel queue rows and Redis entries shaped exactly as Laravel 8.83 writes them."""
