# bench/plot.gp: the plots of bench/run, from the medians it writes.
#   gnuplot -e "datadir='DIR'; imgdir='DIR/img'; workers=2" bench/plot.gp
# DIR/idle.dat:   N  flosse_rss_mib  nginx-lua_rss_mib
# DIR/fanout.dat: N  deliveries/s (flosse nchan floor)  p99_us (flosse nchan floor)
# "?" marks a figure not measured. A missing file skips its plots.
if (!exists("workers")) workers = 2
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
