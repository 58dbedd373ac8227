# Sourced by ./isthmus and .ci/run: exports JAVA_HOME pointing at a JDK >= 25, or exits with a clear message.
# Looks at $JAVA_HOME, then `java` on PATH, then /usr/lib/jvm/* and /opt/*jdk*.

isthmus_java_feature() { # prints the feature release (e.g. 25) of the java binary $1, or nothing
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

isthmus_find_jdk() {
  local candidates=() c v
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  for c in /usr/lib/jvm/* /opt/*jdk* /opt/java/*; do [ -d "$c" ] && candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    v=$(isthmus_java_feature "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if ! ISTHMUS_JDK=$(isthmus_find_jdk); then
  echo "isthmus: needs a JDK 25 or newer (FFM API, jdk.incubator.vector), but none was found." >&2
  echo "  Looked at JAVA_HOME (${JAVA_HOME:-unset}), java on PATH and /usr/lib/jvm/*." >&2
  echo "  Install one (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  exit 1
fi
export JAVA_HOME="$ISTHMUS_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
