from gitgate.cli import main

raise SystemExit(main())
