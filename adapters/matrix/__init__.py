"""Matrix: digests as ``m.room.message`` events through the client-server API."""
