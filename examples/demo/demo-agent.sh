#!/bin/sh
# A stand-in for an AI coding agent. It reads the prompt on stdin like a real agent, does one
# step of the work per call, and claims completion the way ralph asks (a line with only the
# marker). On its first claim it "forgets" the greeting so the gate fails and ralph feeds the
# failure back, as it would with a real agent.
prompt=$(cat)
mkdir -p out
case "$RALPH_ITERATION" in
  1) : > out/hello.txt; echo "Created out/hello.txt." ;;
  2) echo "Hello" > out/hello.txt; echo "Wrote a greeting. Done!"; echo "LOOP_COMPLETE" ;;
  *)
    if printf '%s' "$prompt" | grep -q "greeting"; then
      echo "Hello, world" > out/hello.txt
      echo "The gate said the greeting was incomplete; fixed it."
      echo "LOOP_COMPLETE"
    fi ;;
esac
