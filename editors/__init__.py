"""Knowledge-editing methods. Nothing here knows about pytest."""
