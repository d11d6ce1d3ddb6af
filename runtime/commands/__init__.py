"""The commands of `python -m runtime`, one module each with its own add_parser(sub) and main(args): run and info
(run.py), engine, bench, doctor, drive, record, vehicle and keygen. They sit above the core and its two wings
(sim/, vehicle/), which they import; __main__ only dispatches."""
