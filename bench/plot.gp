# bench/plot.gp: the plots of bench/run, from the medians it writes.
#   gnuplot -e "datadir='DIR'; imgdir='DIR/img'; workers=2" bench/plot.gp
# DIR/idle.dat:   N  flosse_rss_mib  nginx-lua_rss_mib
# DIR/fanout.dat: N  deliveries/s (flosse nchan floor)  p99_us (flosse nchan floor)
# DIR/cluster.dat: server,rate  CPU s per million deliveries (servers redis loadgen)  p50_us  p99_us
# "?" marks a figure not measured. A missing file skips its plots.
if (!exists("workers")) workers = 2
if (!exists("cnodes")) cnodes = 2
if (!exists("cworkers")) cworkers = 1
set datafile missing "?"
set terminal pngcairo size 900,560 enhanced font "DejaVu Sans,11"
set grid
set key top left box opaque
set style line 1 lc rgb "#1b7837" lw 2 pt 7 ps 1.2   # flosse
set style line 2 lc rgb "#c51b7d" lw 2 pt 5 ps 1.2   # nginx + lua / nchan
set style line 3 lc rgb "#4d4d4d" lw 2 pt 9 ps 1.2 dt 2   # floor
set format x "%.0f"

f = datadir."/idle.dat"
if (system("test -s '".f."' && echo 1 || echo 0") + 0) {
  set output imgdir."/rss-vs-streams.png"
  set title sprintf("Idle streams: server RSS (all processes), %d workers each", workers)
  set xlabel "concurrent idle streams"
  set ylabel "RSS (MiB)"
  set xrange [0:*]
  set yrange [0:*]
  plot f using 1:2 with linespoints ls 1 title "flosse", \
       f using 1:3 with linespoints ls 2 title "nginx + lua"
  unset output
}

f = datadir."/fanout.dat"
if (system("test -s '".f."' && echo 1 || echo 0") + 0) {
  set output imgdir."/fanout-deliveries.png"
  set title sprintf("Fan-out: deliveries per second, %d workers each", workers)
  set xlabel "subscribers"
  set ylabel "deliveries/s"
  set xrange [0:*]
  set yrange [0:*]
  set format y "%.0f"
  plot f using 1:2 with linespoints ls 1 title "flosse", \
       f using 1:3 with linespoints ls 2 title "nginx + nchan", \
       f using 1:4 with linespoints ls 3 title "floor (bare C)"
  unset output

  set output imgdir."/fanout-p99.png"
  set title sprintf("Fan-out: p99 publish-to-delivery latency, %d workers each", workers)
  set ylabel "p99 latency (ms)"
  set format y "%g"
  plot f using 1:($5/1000) with linespoints ls 1 title "flosse", \
       f using 1:($6/1000) with linespoints ls 2 title "nginx + nchan", \
       f using 1:($7/1000) with linespoints ls 3 title "floor (bare C)"
  unset output
}

# DIR/cluster.dat: label(server,rate)  CPU s per million deliveries (servers redis loadgen)  p50_us  p99_us
f = datadir."/cluster.dat"
if (system("test -s '".f."' && echo 1 || echo 0") + 0) {
  unset xrange
  set xtics nomirror
  set format x "%g"
  set style data histograms
  set style fill solid 0.85 border -1
  set boxwidth 0.8
  set key outside right top box opaque
  set output imgdir."/cluster-cpu.png"
  set title sprintf("Several nodes through Redis: CPU seconds per million deliveries (%d nodes x %d worker)", cnodes, cworkers)
  set style histogram rowstacked
  set xlabel "server, events a second"
  set ylabel "CPU seconds per million deliveries"
  set yrange [0:*]
  set format y "%g"
  plot f using 2:xtic(1) lc rgb "#1b7837" title "servers (all nodes)", \
       '' using 3 lc rgb "#d95f02" title "redis-server", \
       '' using 4 lc rgb "#bdbdbd" title "load generator"
  unset output

  set output imgdir."/cluster-latency.png"
  set title sprintf("Several nodes through Redis: publish-to-delivery latency (%d nodes x %d worker)", cnodes, cworkers)
  set style histogram clustered gap 1
  set ylabel "latency (ms, log scale)"
  set logscale y
  set yrange [*:*]
  plot f using ($5/1000):xtic(1) lc rgb "#7fbf7b" title "p50", \
       '' using ($6/1000) lc rgb "#762a83" title "p99"
  unset logscale y
  unset output
}
