"""motcua device inventory, provisioning and ESPHome configs for button boxes."""
