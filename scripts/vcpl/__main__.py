from vcpl.cli import main

raise SystemExit(main())
