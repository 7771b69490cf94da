# Copy to boards/secrets.py (git-ignored) and fill in; `make deploy` copies
# it to the board as /secrets.py.
WIFI_PASSWORD = "change me"
MQTT_PASSWORD = None  # or the broker password, with BROKER["username"] in the board file
