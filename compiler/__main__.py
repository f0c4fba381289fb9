from compiler.cli import program

raise SystemExit(program())
