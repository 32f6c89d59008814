"""The stored layers on PostGIS through psycopg 3: cluster, migrations, data, demo."""
