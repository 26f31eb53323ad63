# Sourced by the perf scripts: a process's CPU time, from /proc/PID/stat.

# cpu PID: its user + system CPU seconds so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# cpu_since PID BEFORE: its CPU seconds since BEFORE (a `cpu` reading; 0 for all).
cpu_since() { awk -v a="$(cpu "$1")" -v b="$2" 'BEGIN{printf "%.1f", a - b}'; }
