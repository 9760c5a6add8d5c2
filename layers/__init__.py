"""What the map draws: each Dash-Leaflet layer built from domain data."""
