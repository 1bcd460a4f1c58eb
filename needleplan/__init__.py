"""needleplan: plan percutaneous spine needle procedures on CT."""

__version__ = "0.1.0"
__all__ = ["__version__"]
