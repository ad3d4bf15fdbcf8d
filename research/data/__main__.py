from research.data.cli import main

raise SystemExit(main())
