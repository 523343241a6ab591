-- bench/app's settings. bench/run also passes --heartbeat 0 --no-reload
-- --workers W on the command line. BENCH_HISTORY sets the channel history
-- (nginx + nchan: nchan_message_buffer_length), default 100.
return {
  channel_history = tonumber(os.getenv("BENCH_HISTORY")) or 100,
  channel_backlog = 100000,
  log_level = "warn",
}
