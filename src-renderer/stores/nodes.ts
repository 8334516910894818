import { defineStore } from 'pinia'
import { api, type NodeArgs, type NodeShare } from '../api'
import { loadable } from './charts'

/** hits, errors and durations per node (a dataset of several nodes) */
export const useNodesStore = defineStore('nodeBreakdown', () =>
  loadable<NodeShare[], NodeArgs>((args) => api.nodeBreakdown(args)),
)
