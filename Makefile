# The two commands of the README. Both set up .venv first (quick when nothing changed).
.PHONY: setup demo test

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo

test: setup
	@bash scripts/test.sh
