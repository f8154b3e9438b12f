"""The simulation: scripted model, sessions, server, latency model, BFCL, speech."""
