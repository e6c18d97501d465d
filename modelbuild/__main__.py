"""`python -m modelbuild`: see modelbuild.cli."""
from modelbuild.cli import main

raise SystemExit(main())
