//! What irdc knows of the drivers it runs on, told to the user when a device opens.

/// A warning for lavapipe (a CPU adapter) of a Mesa older than 25, which runs irdc's kernels
/// about 1.5x slower than Mesa 25 (benches/README.md); `None` for every other adapter.
pub fn slow_driver_warning(device_type: wgpu::DeviceType, driver_info: &str) -> Option<String> {
    if device_type != wgpu::DeviceType::Cpu {
        return None;
    }
    let version = driver_info.split("Mesa ").nth(1)?;
    let major: u32 = version.split('.').next()?.trim().parse().ok()?;
    (major < 25).then(|| {
        format!(
            "lavapipe of Mesa {major} runs irdc about 1.5x slower than Mesa 25; on Debian \
             bookworm, `.ci/setup` installs Mesa 25 from bookworm-backports"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::slow_driver_warning;
    use wgpu::DeviceType::{Cpu, DiscreteGpu};

    #[test]
    fn only_lavapipe_before_mesa_25_is_warned_about() {
        let warned = slow_driver_warning(Cpu, "Mesa 22.3.6 (LLVM 15.0.6)").unwrap();
        assert_eq!(
            warned,
            "lavapipe of Mesa 22 runs irdc about 1.5x slower than Mesa 25; on Debian bookworm, \
             `.ci/setup` installs Mesa 25 from bookworm-backports"
        );
        assert_eq!(
            slow_driver_warning(Cpu, "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"),
            None
        );
        assert_eq!(slow_driver_warning(Cpu, "Mesa 26.0.1"), None);
        assert_eq!(slow_driver_warning(DiscreteGpu, "Mesa 22.3.6"), None);
        // A driver string irdc cannot read is not guessed at.
        assert_eq!(slow_driver_warning(Cpu, "SwiftShader 5.0"), None);
        assert_eq!(slow_driver_warning(Cpu, "Mesa x.y"), None);
    }
}
