from compiler.cli import program

if __name__ == "__main__":  # not when a spawned worker process (`matrix --jobs`) imports the main module
    raise SystemExit(program())
