# bench/soak.gp: the plot of bench/soak, four panels against time.
#   gnuplot -e "samples='DIR/samples.tsv'; out='DIR/soak.png'; warmup=120; trend='DIR/trend.gp'; title='...'" bench/soak.gp
# samples.tsv: t rss_kib fds channels lua_kib connections cpu_s (a header line; "?" marks a
# missing figure). trend.gp (optional) sets NAME_a and NAME_b, the least-squares line
# a + b * t (t in seconds) over the samples after the warm-up, for rss_kib, fds_extra
# (fds - connections), channels and lua_kib: drawn dashed over them.
if (!exists("warmup")) warmup = 0
if (!exists("title")) title = "flosse soak"
rss_kib_a = NaN; rss_kib_b = 0; fds_extra_a = NaN; fds_extra_b = 0
channels_a = NaN; channels_b = 0; lua_kib_a = NaN; lua_kib_b = 0
if (exists("trend") && system("test -s '".trend."' && echo 1 || echo 0") + 0) load trend
set datafile missing "?"
set datafile separator "\t"
set terminal pngcairo size 1200,860 enhanced font "DejaVu Sans,11"
set output out
set multiplot layout 2,2 title title font ",14"
set grid
set key top left box opaque
set xlabel "time (minutes)"
set xrange [0:*]
set yrange [0:*]
set offsets 0, 0, graph 0.3, 0   # room for the key above the data
set style line 1 lc rgb "#1b7837" lw 2 pt 7 ps 0.6
set style line 2 lc rgb "#c51b7d" lw 1.5 pt 5 ps 0.5
set style line 3 lc rgb "#4d4d4d" lw 1.5 dt 2
set style line 4 lc rgb "#2166ac" lw 1.5 pt 9 ps 0.5
set style rect fc rgb "#e6e6e6" fs solid 1.0 noborder
set object 1 rect from 0, graph 0 to warmup / 60.0, graph 1 behind
post(t) = t >= warmup ? 1 : NaN
line(a, b, t) = post(t) * (a + b * t)

set title "server RSS (VmRSS)"
set ylabel "MiB"
plot samples using ($1 / 60):($2 / 1024) skip 1 with linespoints ls 1 title "RSS", \
     samples using ($1 / 60):(line(rss_kib_a, rss_kib_b, $1) / 1024) skip 1 with lines ls 3 title "least squares after the warm-up"

set title "open file descriptors, open connections"
set ylabel "count"
set y2label "fds beyond connections"
# the right axis leaves the top third to the key, as the offsets do on the left
set xrange [*:*]; set yrange [*:*]   # stats keeps only the points inside the ranges
stats samples using ($3 - $6) every ::1 nooutput
set xrange [0:*]; set yrange [0:*]
y2lo = STATS_min < 0 ? STATS_min : 0
set y2range [y2lo : STATS_max + (STATS_max - y2lo) * 0.6 + 1]
set y2tics
set ytics nomirror
plot samples using ($1 / 60):3 skip 1 with linespoints ls 1 title "fds (/proc/PID/fd)", \
     samples using ($1 / 60):6 skip 1 with linespoints ls 2 title "connections (core.stats)", \
     samples using ($1 / 60):($3 - $6) skip 1 axes x1y2 with linespoints ls 4 title "fds - connections (right axis)", \
     samples using ($1 / 60):(line(fds_extra_a, fds_extra_b, $1)) skip 1 axes x1y2 with lines ls 3 title "fds - connections: least squares"
unset y2label
unset y2tics
set ytics mirror

set title "channels in the registry"
set ylabel "channels"
set format y "%.0f"
plot samples using ($1 / 60):4 skip 1 with linespoints ls 1 title "channels (core.stats)", \
     samples using ($1 / 60):(line(channels_a, channels_b, $1)) skip 1 with lines ls 3 title "least squares"

set title "Lua memory, all workers' states"
set ylabel "MiB"
set format y "%g"
plot samples using ($1 / 60):($5 / 1024) skip 1 with linespoints ls 1 title "Lua (core.stats lua\\_bytes)", \
     samples using ($1 / 60):(line(lua_kib_a, lua_kib_b, $1) / 1024) skip 1 with lines ls 3 title "least squares"
unset multiplot
unset output
