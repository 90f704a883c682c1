"""The library's argument checks, for code built on it: a named TypeError or ValueError in the library's words.

Each returns the value, converted (an int, a float, a bool), or raises a ``TypeError`` for a wrong
type and a ``ValueError`` for a value outside its domain, with a message that names the argument:
"`name` should be ... Instead, received ...". `trainers` checks its own arguments with them (the
alarm thresholds, `trainers.watch.Watch`), so every error of the project reads alike.
`available_memory` is what sizes are checked against before a large allocation.
"""

from ._validation import (available_memory, check_choice, check_count, check_flag, check_integer, check_nonnegative,
                          check_positive, check_real, check_seed)

__all__ = ["available_memory", "check_choice", "check_count", "check_flag", "check_integer", "check_nonnegative",
           "check_positive", "check_real", "check_seed"]
