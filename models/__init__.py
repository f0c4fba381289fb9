"""The bundled model zoo: factories and data helpers named by the specs in this folder."""
