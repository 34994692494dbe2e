"""checks.py - the pass/fail count the Python test drivers share.

    from checks import check, summary
    check(cond, "what was expected")   # counts; a failure prints "FAIL: what"
    return summary()                   # prints "N passed, N failed"; 1 if anything failed, else 0
"""
passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what, flush=True)


def summary():
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
