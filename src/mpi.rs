//! `mpirun -np K irdc train|deblur ...` (docs/mpi.md): the MPI side of a data-parallel run, through
//! rsmpi, built with the `mpi` feature. A process not started by an MPI launcher never calls MPI,
//! so `irdc` alone runs as it always has.

/// Whether an MPI launcher (Open MPI's or a PMI one: MPICH, Slurm) started this process.
pub fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

#[cfg(feature = "mpi")]
pub use with_mpi::{start, Mpi};

#[cfg(feature = "mpi")]
mod with_mpi {
    use mpi::collective::SystemOperation;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::CommunicatorCollectives;
    use std::rc::Rc;

    /// This process's place in the job. MPI is finalised when it is dropped.
    pub struct Mpi {
        _universe: mpi::environment::Universe,
        world: SimpleCommunicator,
        local: usize,
    }

    /// MPI, when a launcher started this process (`None` otherwise).
    pub fn start() -> anyhow::Result<Option<Rc<Mpi>>> {
        if !super::launched() {
            return Ok(None);
        }
        let universe = mpi::initialize()
            .ok_or_else(|| anyhow::anyhow!("MPI could not be initialised (or was already)"))?;
        let world = universe.world();
        let local = world.split_shared(world.rank()).rank() as usize;
        Ok(Some(Rc::new(Mpi {
            _universe: universe,
            world,
            local,
        })))
    }

    impl Mpi {
        /// The rank among the job's processes on this machine: it picks the adapter.
        pub fn local(&self) -> usize {
            self.local
        }

        /// "rank 1 of 2 on HOST".
        pub fn who(&self) -> String {
            let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
            format!(
                "rank {} of {} on {host}",
                self.world.rank(),
                self.world.size()
            )
        }

        /// End the whole job after `e` on this rank: every other rank may be waiting in an
        /// all-reduce for this one, so they are stopped too (MPI_Abort), not left hanging.
        pub fn fail(&self, e: &str) -> ! {
            eprintln!("error: {}: {e}; ending the whole job", self.who());
            self.world.abort(1)
        }
    }

    impl runtime::train::Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn sum(&self, data: &mut [f32]) -> Result<(), String> {
            // MPI's default error handler ends the job on a failed collective; nothing returns.
            let send = data.to_vec();
            self.world
                .all_reduce_into(&send[..], data, SystemOperation::sum());
            Ok(())
        }
    }
}

#[cfg(not(feature = "mpi"))]
pub use without_mpi::{start, Mpi};

/// Without the `mpi` feature there is no job to be part of: [`Mpi`] has no value.
#[cfg(not(feature = "mpi"))]
mod without_mpi {
    use std::rc::Rc;

    pub enum Mpi {}

    /// Refuses to run as one of K ranks, each of which would train alone.
    pub fn start() -> anyhow::Result<Option<Rc<Mpi>>> {
        if super::launched() {
            anyhow::bail!(
                "started by mpirun, but this irdc was built without MPI: build it with `cargo build --release --features mpi` (docs/mpi.md), or run it without mpirun"
            );
        }
        Ok(None)
    }

    impl Mpi {
        pub fn local(&self) -> usize {
            match *self {}
        }
        pub fn who(&self) -> String {
            match *self {}
        }
        pub fn fail(&self, _: &str) -> ! {
            match *self {}
        }
    }

    impl runtime::train::Collective for Mpi {
        fn rank(&self) -> usize {
            match *self {}
        }
        fn size(&self) -> usize {
            match *self {}
        }
        fn sum(&self, _: &mut [f32]) -> Result<(), String> {
            match *self {}
        }
    }
}
