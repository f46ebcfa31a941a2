"""The bundled synthetic sample scene: photos from a drone orbit plus their exact camera poses."""
