"""FAKE evdev.ecodes: the event type and the absolute axes' codes, as linux/input-event-codes.h numbers them."""

EV_ABS = 3
ecodes = {"EV_ABS": 3, "ABS_X": 0, "ABS_Y": 1, "ABS_Z": 2, "ABS_RX": 3, "ABS_RY": 4, "ABS_RZ": 5, "KEY_A": 30}
