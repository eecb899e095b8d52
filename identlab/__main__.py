from identlab.cli import main

raise SystemExit(main())
