"""TUF image repository and director (docs/trust-delivery.md)."""
