"""The role pages of the command app (Dash apps mounted on the platform's Flask server): thin layouts and callbacks."""
