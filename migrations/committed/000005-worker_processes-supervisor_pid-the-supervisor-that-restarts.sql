--! Previous: sha1:9753f2dfb045a45eeba537089d174be867fb5b92
--! Hash: sha1:d380c3ed19fb5f563351a83f4056a62241e035e5
--! Message: worker_processes.supervisor_pid: the supervisor that restarts a runner

--! split: 1-current.sql
-- `mailer worker` supervises its runner in a child process (src/worker/supervisor.ts): record
-- which supervisor a runner belongs to, so an operator (and the tests) can find the runner of the
-- `mailer worker` process they started, and signal the supervisor rather than the runner.
alter table public.worker_processes add column if not exists supervisor_pid integer;
comment on column public.worker_processes.pid is 'OS process id of the runner (the process that holds the connections).';
comment on column public.worker_processes.supervisor_pid is
  'OS process id of the `mailer worker` supervisor that started this runner and restarts it when it dies; null when run with --no-supervise. Signal this one to stop the worker.';
