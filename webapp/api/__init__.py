"""JSON API used by the upload widget and other clients."""
