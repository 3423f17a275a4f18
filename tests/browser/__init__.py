"""What the real-browser tests share: the kinds of browser, the accessibility check, the screens.

axe-core comes from the npm registry into ``tests/browser/node_modules``:
``npm ci --prefix tests/browser --no-audit --no-fund``.
"""
