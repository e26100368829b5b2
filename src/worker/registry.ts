// Builds graphile-worker's task list from tasks/: the file name is the task identifier, and each
// file's default export takes the shared dependencies and returns the task function. The registry
// lives here, outside tasks/, so graphile-worker never mistakes it for a task.
import { readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Task, TaskList } from 'graphile-worker';
import type { TaskDeps } from './deps.ts';

export const tasksDirectory = join(resolve(import.meta.dirname, '..', '..'), 'tasks');

export async function loadTaskList(deps: TaskDeps): Promise<TaskList> {
  const files = (await readdir(tasksDirectory)).filter((f) => f.endsWith('.ts')).sort();
  const taskList: TaskList = {};
  for (const file of files) {
    const module = (await import(pathToFileURL(join(tasksDirectory, file)).href)) as {
      default: (deps: TaskDeps) => Task;
    };
    taskList[basename(file, '.ts')] = module.default(deps);
  }
  return taskList;
}
