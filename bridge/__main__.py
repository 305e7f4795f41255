from reascribe.cli import main

raise SystemExit(main())
