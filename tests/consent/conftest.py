"""The builders in ``builder.py`` are plain functions; nothing here needs a fixture yet."""
