"""The trust boundary: what arrives through Temporal or the codec server is untrusted."""
