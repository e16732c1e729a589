"""motcua lobby board and counter displays (pages served by the queue server)."""
