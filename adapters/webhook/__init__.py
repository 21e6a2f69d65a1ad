"""The signed JSON webhook output: each digest message POSTed as a versioned JSON body to a
URL from the environment, signed with HMAC-SHA256 so the receiver can tell it came from this
bridge and refuse replays (``webhook:ENV_NAME`` destinations)."""
