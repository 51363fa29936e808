"""verl plugin hook: ``import verl`` imports this module in every process (entry point group ``verl.plugins``).

verl swallows exceptions raised by entry-point plugins (logged at debug level), so a failure here would be
silent; ``tests/test_verl_guard.py`` imports this module directly so that breakage fails the suite instead.
"""

from duet_verl.cpu import register

register()
