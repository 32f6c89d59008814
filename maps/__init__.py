"""folium map builders: data in, folium.Map / HTML out (no database, no HTTP)."""
