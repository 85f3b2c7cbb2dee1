//! Streamed runs on the device (`compiler::stream`): each stage's graph compiled once for the
//! window; its executable made when the stage starts and dropped when it ends, so the device
//! holds one stage's memory at a time while the host keeps the values between stages.

use crate::error::{Result, RuntimeError};
use crate::{Executable, Gpu, PipelineCache};
use compiler::stream::{StageRunner, StreamPlan};
use compiler::Target;
use ir::{NodeId, Tensor, ValueKind};
use std::collections::HashMap;

/// A stream plan with each stage compiled for one target.
pub struct Streamed {
    pub plan: StreamPlan,
    stages: Vec<Compiled>,
}

struct Compiled {
    plan: compiler::Plan,
    /// The plan's value for each of the stage's reads, in order (`None`: read by nothing).
    reads: Vec<Option<NodeId>>,
    /// The plan's value for each of the stage's writes, in order.
    writes: Vec<NodeId>,
}

impl Streamed {
    pub fn compile(plan: StreamPlan, target: &Target) -> Result<Streamed> {
        let stages = (plan.stages.iter())
            .map(|s| {
                let (compiled, _) = compiler::compile(&s.graph, target)?;
                let find = |u: &NodeId| {
                    let name = &plan.graph.nodes[*u].name;
                    (compiled.values.iter()).find(|v| v.kind == ValueKind::Input && &v.name == name)
                };
                let reads = (s.reads.iter())
                    .map(|u| find(u).filter(|v| !v.pieces.is_empty()).map(|v| v.node))
                    .collect();
                let writes = compiled.outputs.iter().map(|&(_, o)| o).collect();
                Ok(Compiled {
                    plan: compiled,
                    reads,
                    writes,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Streamed { plan, stages })
    }

    /// The device memory of the largest stage, what a streamed run holds at once.
    pub fn device_bytes(&self) -> u64 {
        (self.stages.iter())
            .map(|s| s.plan.memory.peak_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Kernels over all stages, for messages.
    pub fn kernels(&self) -> usize {
        self.stages.iter().map(|s| s.plan.kernels.len()).sum()
    }

    /// Run `image` through the stages on `gpu`, with weights by node name from `params`;
    /// `progress(done, total)` after each window.
    pub fn run(
        &self,
        gpu: &Gpu,
        cache: &mut PipelineCache,
        params: &HashMap<String, Tensor<f32>>,
        image: Tensor<f32>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<f32>> {
        let mut runner = Runner {
            gpu,
            cache,
            params,
            stages: &self.stages,
            exe: None,
            error: None,
        };
        let out = compiler::stream::run(&self.plan, image, &mut runner, progress);
        // A device error keeps its kind; the host's own errors are worded by the planner.
        match (out, runner.error) {
            (Ok(t), _) => Ok(t),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(RuntimeError::Stream(e)),
        }
    }
}

struct Runner<'a> {
    gpu: &'a Gpu,
    cache: &'a mut PipelineCache,
    params: &'a HashMap<String, Tensor<f32>>,
    stages: &'a [Compiled],
    exe: Option<Executable>,
    error: Option<RuntimeError>,
}

impl Runner<'_> {
    fn keep<T>(&mut self, r: Result<T>) -> std::result::Result<T, String> {
        r.map_err(|e| {
            let message = e.to_string();
            self.error = Some(e);
            message
        })
    }

    fn open(&mut self, k: usize) -> Result<Executable> {
        let stage = &self.stages[k];
        let exe = Executable::with_cache(self.gpu, &stage.plan, self.cache)?;
        exe.write_params(self.params)?;
        Ok(exe)
    }

    fn window(&self, k: usize, inputs: Vec<Tensor<f32>>) -> Result<Vec<Tensor<f32>>> {
        let stage = &self.stages[k];
        let exe = (self.exe.as_ref())
            .ok_or_else(|| RuntimeError::Stream(format!("stage {k} ran before it began")))?;
        for (node, t) in stage.reads.iter().zip(&inputs) {
            if let Some(node) = node {
                exe.write(*node, &t.data)?;
            }
        }
        exe.run()?;
        (stage.writes.iter())
            .map(|&o| Ok(Tensor::new(&stage.plan.values[o].shape, exe.read(o)?)))
            .collect()
    }
}

impl StageRunner for Runner<'_> {
    fn begin(&mut self, k: usize) -> std::result::Result<(), String> {
        let exe = self.open(k);
        self.exe = Some(self.keep(exe)?);
        Ok(())
    }

    fn run(
        &mut self,
        k: usize,
        inputs: Vec<Tensor<f32>>,
    ) -> std::result::Result<Vec<Tensor<f32>>, String> {
        let out = self.window(k, inputs);
        self.keep(out)
    }

    fn end(&mut self, _k: usize) {
        self.exe = None;
    }
}
