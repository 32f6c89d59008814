"""Pure spatial computation: arrays and GeoDataFrames in, results out (no database, no HTTP)."""
